"""HELMET's ALCE demonstration files, verbatim: princeton-nlp/HELMET@4526dfbdc512bd9ff721da336bff4e3e75ecfd27
prompts/asqa_revised.json and prompts/qampari_revised.json (MIT License, Copyright (c) 2024 Princeton Natural Language
Processing). They live in HELMET's GitHub repository, not in its Hub data release, so longkit carries them; each
constant is the file's text line by line (tests pin their sha256 against the official files)."""

from __future__ import annotations

ASQA_REVISED = (
    "{\n"
    '    "instruction": "Instruction: Write an accurate, engaging, and concise answer for the given question using only the provided search results (some of which might be irrelevant) and cite them properly. Use an unbiased and journalistic tone. Always cite for any factual claim. When citing a document, surround its ID with square brackets, such as [x] to cite document x. To cite multiple documents, simply concatenate the citation markers; for example, use [x][y][z] to cite the documents with ID x, y, and z. Cite at least one document and at most three documents in each sentence. If multiple documents support the sentence, only cite a minimum sufficient subset of the documents.",\n'
    '    "demo_sep": "\\n\\n\\n",\n'
    '    "demo_prompt": "{instruction}\\n\\nQuestion: {question}\\n\\n{context}\\n\\nAnswer: {answer}",\n'
    '    "doc_prompt": "Document [{ID}](Title: {title}): {text}",\n'
    '    "demos": [\n'
    "        {\n"
    '            "question": "Which is the most rainy place on earth?",\n'
    '            "answer": "Several places on Earth claim to be the most rainy, such as Lloró, Colombia, which reported an average annual rainfall of 12,717 mm between 1952 and 1989, and López de Micay, Colombia, which reported an annual 12,892 mm between 1960 and 2012 [3]. However, the official record is held by Mawsynram, India with an average annual rainfall of 11,872 mm [3], although nearby town Sohra, India, also known as Cherrapunji, holds the record for most rain in a calendar month for July 1861 and most rain in a year from August 1860 to July 1861 [1].",\n'
    '            "docs": [\n'
    "                {\n"
    '                    "title": "Cherrapunji",\n'
    '                    "text": "Cherrapunji Cherrapunji (; with the native name Sohra being more commonly used, and can also be spelled Cherrapunjee or Cherrapunji) is a subdivisional town in the East Khasi Hills district in the Indian state of Meghalaya. It is the traditional capital of aNongkhlaw \\"hima\\" (Khasi tribal chieftainship constituting a petty state), both known as Sohra or Churra. Cherrapunji has often been credited as being the wettest place on Earth, but for now nearby Mawsynram currently holds that distinction. Cherrapunji still holds the all-time record for the most rainfall in a calendar month for July 1861 and most rain in a year from August 1860 to July 1861, however: it received in"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Cherrapunji",\n'
    '                    "text": "Radio relay station known as Akashvani Cherrapunji. It broadcasts on FM frequencies. Cherrapunji Cherrapunji (; with the native name Sohra being more commonly used, and can also be spelled Cherrapunjee or Cherrapunji) is a subdivisional town in the East Khasi Hills district in the Indian state of Meghalaya. It is the traditional capital of aNongkhlaw \\"hima\\" (Khasi tribal chieftainship constituting a petty state), both known as Sohra or Churra. Cherrapunji has often been credited as being the wettest place on Earth, but for now nearby Mawsynram currently holds that distinction. Cherrapunji still holds the all-time record for the most rainfall"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Mawsynram",\n'
    '                    "text": "Mawsynram Mawsynram () is a village in the East Khasi Hills district of Meghalaya state in north-eastern India, 65 kilometres from Shillong. Mawsynram receives one of the highest rainfalls in India. It is reportedly the wettest place on Earth, with an average annual rainfall of 11,872 mm, but that claim is disputed by Lloró, Colombia, which reported an average yearly rainfall of 12,717 mm between 1952 and 1989 and López de Micay, also in Colombia, which reported an annual 12,892 mm per year between 1960 and 2012. According to the \\"Guinness Book of World Records\\", Mawsynram received of rainfall in 1985. Mawsynram is located at 25° 18′"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Earth rainfall climatology",\n'
    '                    "text": "Pacific Northwest, and the Sierra Nevada range are the wetter portions of the nation, with average rainfall exceeding per year. The drier areas are the Desert Southwest, Great Basin, valleys of northeast Arizona, eastern Utah, central Wyoming, eastern Oregon and Washington and the northeast of the Olympic Peninsula. The Big Bog on the island of Maui receives, on average, every year, making it the wettest location in the US, and all of Oceania. The annual average rainfall maxima across the continent lie across the northwest from northwest Brazil into northern Peru, Colombia, and Ecuador, then along the Atlantic coast of"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Going to Extremes",\n'
    '                    "text": "in the world. Oymyakon in Siberia, where the average winter temperature is −47 °F (− 44 °C). Arica in Chile, where there had been fourteen consecutive years without rain. Fog is the only local source of water. Mawsynram in India, where average annual rainfall is 14 meters, falling within a four-month period in the monsoon season. The rainfall is approximately equal to that of its neighbor Cherrapunji. Dallol in Ethiopia, known as the \'Hell-hole of creation\' where the temperature averages 94 °F (34 °C) over the year. In his second series, Middleton visited places without permanent towns, locations where \\"survival\\""\n'
    "                }\n"
    "            ]\n"
    "        },\n"
    "        {\n"
    '            "question": "When did the us break away from england?",\n'
    '            "answer": "The United States took the first step towards gaining independence from Great Britain when it declared independence from Great Britain on July 2, 1776 (although the event is now commemorated on July 4, 1776, the date when the Declaration of Independence was officially adopted by Congress) [2]. The Treaty of Paris was later signed on September 3, 1783, formally separating the United States from the British Empire [3].",\n'
    '            "docs": [\n'
    "                {\n"
    '                    "title": "United States withdrawal from Saudi Arabia",\n'
    '                    "text": "United States withdrawal from Saudi Arabia Beginning during Operation Desert Shield in August 1990, while preparing for the Gulf War, the United States sent a large troop contingent to Saudi Arabia. After the war, remnant troops, primarily U.S. Air Force personnel, augmented by a smaller number of coordinating and training personnel from the U.S. Navy, U.S. Army and U.S. Marine Corps remained in Saudi Arabia under the aegis of Joint Task Force Southwest Asia (JTF-SWA), as part of Operation Southern Watch (OSW). The United Kingdom and France also maintained a small contingent of Royal Air Force and French Air Force"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Decolonization of the Americas",\n'
    '                    "text": "and France has fully \\"integrated\\" most of its former colonies as fully constituent \\"departments\\" of France. The United States of America declared independence from Great Britain on July 2, 1776 (although the event is now commemorated on July 4, the date when the Declaration of Independence was officially adopted by Congress), in so doing becoming the first independent, foreign-recognized nation in the Americas and the first European colonial entity to break from its mother country. Britain formally acknowledged American independence in 1783 after its defeat in the American Revolutionary War. Although initially occupying only the land east of the Mississippi"\n'
    "                },\n"
    "                {\n"
    '                    "title": "American Revolution",\n'
    '                    "text": "second British army at Yorktown in the fall of 1781, effectively ending the war. The Treaty of Paris was signed September 3, 1783, formally ending the conflict and confirming the new nation\'s complete separation from the British Empire. The United States took possession of nearly all the territory east of the Mississippi River and south of the Great Lakes, with the British retaining control of Canada and Spain taking Florida. Among the significant results of the revolution was the creation of the United States Constitution, establishing a relatively strong federal national government that included an executive, a national judiciary, and"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Decolonization",\n'
    '                    "text": "accelerate decolonialization and bring an end to the colonial empires of its Western allies, most importantly during the 1956 Suez Crisis, but American military bases were established around the world and direct and indirect interventions continued in Korea, Indochina, Latin America (\\"inter alia\\", the 1965 occupation of the Dominican Republic), Africa, and the Middle East to oppose Communist invasions and insurgencies. Since the dissolution of the Soviet Union, the United States has been far less active in the Americas, but invaded Afghanistan and Iraq following the September 11 attacks in 2001, establishing army and air bases in Central Asia. Before"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Decolonization",\n'
    '                    "text": "the responsibility of the United Kingdom (with a copy of the new constitution annexed), and finally, if approved, issuance of an Order of Council fixing the exact date of independence. After World War I, several former German and Ottoman territories in the Middle East, Africa, and the Pacific were governed by the UK as League of Nations mandates. Some were administered directly by the UK, and others by British dominions – Nauru and the Territory of New Guinea by Australia, South West Africa by the Union of South Africa, and Western Samoa by New Zealand. Egypt became independent in 1922,"\n'
    "                }\n"
    "            ]\n"
    "        },\n"
    "        {\n"
    '            "question": "Who set the record for longest field goal?",\n'
    '            "answer": "The record for the longest field goal in an NFL game was set by Matt Prater at 64 yards [1], but the record for the longest field goal at any level was 69 yards, kicked by collegiate kicker Ove Johansson in a 1976 Abilene Christian University football game against East Texas State University [2].",\n'
    '            "docs": [\n'
    "                {\n"
    '                    "title": "Field goal",\n'
    '                    "text": "toward its own end. The longest field goal kick in NFL history is 64 yards, a record set by Matt Prater on December 8, 2013. The previous record was 63, originally set by Tom Dempsey (1970) and then matched by Jason Elam (1998), Sebastian Janikowski (2011), David Akers (2012), and Graham Gano (2018). High school, college and most professional football leagues offer only a three-point field goal; however, some professional leagues have encouraged more rare kicks through \\"four-point field goals\\". NFL Europe encouraged long field goals of 50 yards or more by making those worth four points instead of three"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Field goal range",\n'
    '                    "text": "35 and 40 yard lines (closer in a crosswind) often will go for the more risky fourth down conversion rather than risk either the touchback or the missed field goal. The longest field goal in recorded football history was 69 yards, set by collegiate kicker Ove Johansson, who was born in Sweden, in a 1976 Abilene Christian University football game against East Texas State University (now Texas A&M Commerce) at Shotwell Stadium in Abilene. The longest successful field goal in the NFL was 64 yards and was completed by Matt Prater in 2013. The NCAA record is 67 yards held"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Field goal",\n'
    '                    "text": "both end zones) is only 66 yards. Scaccia, while playing indoor football, attempted a 64-yard kick that was inches short of success, hitting the crossbar. Longer field goals have been attempted at times; the longest attempt in the NFL, which was well short and was kicked into the wind, was 76 yards, attempted by Sebastian Janikowski of the Oakland Raiders, in a September 28, 2008 game against the San Diego Chargers. NFL Europe rewarded kickers that successfully kicked a field goal of longer than 50 yards with a bonus point, making such field goals worth 4 points instead of 3;"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Field goal",\n'
    '                    "text": "this accomplishment is not the official record. All of the above kicks were successful with the use of a kicking tee, which was banned by the NCAA after the 1988 season. The longest known drop-kicked field goal in college football was a 62-yard kick from Pat O\'Dea, an Australian kicker who played on the Wisconsin Badgers football team. O\'Dea\'s kick took place in a blizzard against Northwestern on November 15, 1898. The longest field goal in U Sports football history is 59 yards, by Niko Difonte of Calgary Dinos, playing against the UBC Thunderbirds on November 11, 2017. The field"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Field goal range",\n'
    '                    "text": "NFL and have been banned from NCAA since 1989) is 68 yards held by Fabrizio Scaccia, and the high school record 68 yards held by Dirk Borgognone; high school has wider goal posts and treats a field goal attempt that lands short in the field of play the same as a punt, making longer attempts much less risky. The indoor football record, with narrower and higher goal posts, is 63 yards (set by Aaron Mills), which is practically as long of a field goal as is possible in that variant of the sport, since the field in indoor football (including"\n'
    "                }\n"
    "            ]\n"
    "        },\n"
    "        {\n"
    '            "question": "Who played galen in planet of the apes?",\n'
    '            "answer": "In the 1968 film Planet of the Apes, Galen was played by Wright King [2]. And in the tv series Planet of the Apes, Galen was played by Roddy McDowall [1].",\n'
    '            "docs": [\n'
    "                {\n"
    '                    "title": "Planet of the Apes",\n'
    '                    "text": "installment. Jacobs died on June 27, 1973, bringing an end to the APJAC Productions era of the \\"Planet of the Apes\\" franchise. Former Fox executive Stan Hough took over as producer for the television project, titled \\"Planet of the Apes\\". CBS picked up the series for its 1974 autumn lineup. Ron Harper and James Naughton played Alan Virdon and Peter Burke, two 20th-century American astronauts who pass through a time warp to a future where apes subjugate humans (unlike the original film, the humans can speak). Roddy McDowall returned to the franchise as Galen, a chimpanzee who joins the astronauts."\n'
    "                },\n"
    "                {\n"
    '                    "title": "Planet of the Apes (1968 film)",\n'
    '                    "text": "chimpanzees: animal psychologist Zira (Kim Hunter) and surgeon Galen (Wright King). While unable to speak as his throat wound is healing, called \\"Bright Eyes\\" by Zira and placed with one of the captive primitive humans he later names \\"Nova\\", Taylor observes the enhanced society of talking apes and in a strict caste system: the gorillas being the military police, hunters and workers; the orangutans overseeing the affairs of government, science, and religion; and intellectual chimpanzees being mostly scientists. While their society is a theocracy similar to the beginnings of the human Industrial Era, the apes consider the primitive humans as"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Planet of the Apes (1968 film)",\n'
    '                    "text": "Planet of the Apes (1968 film) Planet of the Apes is a 1968 American science fiction film directed by Franklin J. Schaffner. It stars Charlton Heston, Roddy McDowall, Kim Hunter, Maurice Evans, James Whitmore, James Daly and Linda Harrison. The screenplay by Michael Wilson and Rod Serling was loosely based on the 1963 French novel \\"La Plan\\u00e8te des Singes\\" by Pierre Boulle. Jerry Goldsmith composed the groundbreaking avant-garde score. It was the first in a series of five films made between 1968 and 1973, all produced by Arthur P. Jacobs and released by 20th Century Fox. The film tells the"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Planet of the Apes",\n'
    '                    "text": "Rupert Wyatt. To portray ape characters realistically, the production avoided practical effects in favor of performance capture acting, partnering with New Zealand visual effects company Weta Digital. Wyatt cast James Franco as Will Rodman, while veteran performance capture actor Andy Serkis signed on to star as Caesar. \\"Rise\\" debuted on August 5, 2011. Critics reviewed it positively, especially praising the visual effects and Serkis\'s performance. It was a major box office hit, taking in $482 million globally, more than five times its $93 million budget. Weta\'s special effects earned the film two Visual Effects Society Awards and an Oscar nomination"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Planet of the Apes",\n'
    '                    "text": "film stars Mark Wahlberg as astronaut Leo Davidson, who accidentally travels through a wormhole to a distant planet where talking apes enslave humans. He leads a human revolt and upends ape civilization by discovering that the apes evolved from the normal earth primates who had accompanied his mission, and arrived years before. Helena Bonham Carter played chimpanzee Ari, while Tim Roth played the human-hating chimpanzee General Thade. The film received mixed reviews; most critics believed it failed to compare to the original. Much of the negative commentary focused on the confusing plot and twist ending, though many reviewers praised the"\n'
    "                }\n"
    "            ]\n"
    "        }\n"
    "    ]\n"
    "}"
)

QAMPARI_REVISED = (
    "{\n"
    '    "instruction": "Instruction: Provide a list of accurate answers for the given question using only the provided search results (some of which might be irrelevant) and cite them properly. Always cite one and only one document for each answer. When citing a document, surround its ID with square brackets, such as [x] to cite document x. Separate answers by commas. For questions that have more than 5 answers, write at least 5 answers.",\n'
    '    "demo_sep": "\\n\\n\\n",\n'
    '    "demo_prompt": "{instruction}\\n\\nQuestion: {question}\\n\\n{context}\\nAnswer: {answer}",\n'
    '    "doc_prompt": "Document [{ID}](Title: {title}): {text}",\n'
    '    "demos": [\n'
    "        {\n"
    '            "question": "Which books were written by Nevil Shute?",\n'
    '            "answer": "Marazan [1], Stephen Morris [1], Beyond the Black Stump [2], Lonely Road [2], The Chequer Board [2], In the Wet [2], Trustee from the Toolroom [2], Round the Bend [2], No Highway [3], Ruined City [3], On the Beach [3].",\n'
    '            "docs": [\n'
    "                {\n"
    '                    "title": "Nevil Shute",\n'
    '                    "text": "early stages. My congratulations.\\" His celebrity as a writer caused the Ministry of Information to send him to the Normandy Landings on 6 June 1944 and later to Burma as a correspondent. He finished the war with the rank of lieutenant commander in the Royal Navy Volunteer Reserves (RNVR). Shute\'s first novel, \\"Stephen Morris\\", was written in 1923, but not published until 1961. His first published novel was \\"Marazan\\", which came out in 1926. After that he averaged one novel every two years through the 1950s, with the exception of a six-year hiatus while he was establishing his own aircraft"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Nevil Shute",\n'
    '                    "text": "theme is the bridging of social barriers such as class (\\"Lonely Road\\" and \\"Landfall\\"), race (\\"The Chequer Board\\"), or religion (\\"Round the Bend\\"). The Australian novels are individual hymns to that country, with subtle disparagement of the mores of the United States (\\"Beyond the Black Stump\\") and overt antipathy towards the post-World War II socialist government of Shute\'s native Britain (\\"The Far Country\\" and \\"In the Wet\\"). Shute\'s heroes tended to be like himself: middle class solicitors, doctors, accountants, bank managers, engineers, generally university graduates. However (as in \\"Trustee from the Toolroom\\"), Shute valued the honest artisans and their social"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Nevil Shute",\n'
    '                    "text": "construction company, Airspeed Ltd. His popularity grew slowly with each novel, but he became much more famous after the publication of \\"On the Beach\\" in 1957. Shute\'s novels are written in a simple, highly readable style, with clearly delineated plot lines. Where there is a romantic element, sex is referred to only obliquely. Many of the stories are introduced by a narrator who is not a character in the story. The most common theme in Shute\'s novels is the dignity of work, spanning all classes, whether an Eastern European bar \\"hostess\\" (\\"Ruined City\\") or brilliant boffin (\\"No Highway\\"). Another recurrent"\n'
    "                },\n"
    "                {\n"
    '                    "title": "The Chequer Board",\n'
    '                    "text": "the Burmese people\\", both of which are central to the book\'s story. Shute was concerned that sales of the book in the United States would be negatively impacted by the book\'s open-minded handling of racial issues; as it turned out, sales soared. Shute and his wife traveled the U.S. on Greyhound buses to \\"\\"get in touch with the man on the street,\\"\\" finding the experience refreshing. Afterwards he wrote \\"\\"Sincerity is the first attribute for making money in the business of writing novels.\\"\\" The Chequer Board The Chequer Board is a novel by Nevil Shute, first published in the United"\n'
    "                },\n"
    "                {\n"
    '                    "title": "In the Wet",\n'
    '                    "text": "had used the idea of multiple votes for merit in his short story \\"The Curious Republic of Gondour\\". In the Wet In The Wet is a novel by Nevil Shute that was first published in the United Kingdom in 1953. It contains many of the typical elements of a hearty and adventurous Shute yarn such as flying, the future, mystic states, and ordinary people doing extraordinary things. The story is opened by its initial narrator \\u2013 an Anglican priest in the Bush Brotherhood named Roger Hargreaves \\u2013 who describes his ordinary circumstances in a large parish of the Australian outback"\n'
    "                }\n"
    "            ]\n"
    "        },\n"
    "        {\n"
    '            "question": "Which film has Gong Li as a member of its cast?",\n'
    '            "answer": "The Story of Qiu Ju [1], Farewell My Concubine [2], Flirting Scholar [2], The Monkey King 2 [3], Mulan [3], Saturday Fiction [3], Coming Home [3].",\n'
    '            "docs": [\n'
    "                {\n"
    '                    "title": "Gong Li",\n'
    '                    "text": "Gong Li Gong Li (born 31 December 1965) is a Chinese-born Singaporean film actress. She achieved international prominence through her close collaborations with Chinese director Zhang Yimou and won the Volpi Cup for Best Actress at Venice for her performance in his 1992 film \\"The Story of Qiu Ju\\". She has been credited with helping to bring Chinese cinema to prominence in Europe and the United States. In 2006, she was voted the most beautiful woman in China. Gong has won numerous accolades for her work as an actress; she won the New York Film Critics Circle Award for Best"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Gong Li",\n'
    '                    "text": "making her realize that she has assisted the dark cynical system. In 1993, she received a New York Film Critics Circle award for her role in \\"Farewell My Concubine\\" (1993). Directed by Chen Kaige, the film was her first major role with a director other than Zhang Yimou. In the same year, she was awarded with the Berlinale Camera at the 43rd Berlin International Film Festival. \\"Premiere\\" magazine ranked her performance in \\"Farewell My Concubine\\" as the 89th greatest performance of all time. She also worked with renowned director Stephen Chow in comedy films \\"\\" (1991) and \\"Flirting Scholar\\" (1993)."\n'
    "                },\n"
    "                {\n"
    '                    "title": "Gong Li",\n'
    '                    "text": "International Film Festival. Later that same year, she reunited with Zhang Yimou for the film \\"Coming Home\\", which is set during the throes of the Cultural Revolution; this film was their first collaboration since 2006. In 2016, Gong took on her first action role in \\"The Monkey King 2\\", playing the White Bone Demon. In 2018, Gong was cast in Lou Ye\'s period drama \\"Saturday Fiction\\", where she plays an actress who is working undercover gathering intelligence for the Allies. That year, she was also cast in the live-action adaptation of the 1998 Disney animated film \\"Mulan\\", as an unspecified"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Zhang Yimou",\n'
    '                    "text": "in Zhang\'s earlier films. \\"Raise the Red Lantern\\" was nominated in the Best Foreign Language Film category at the 1992 Academy Awards, becoming the second Chinese film to earn this distinction (after Zhang\'s \\"Ju Dou\\"). It eventually lost out to Gabriele Salvatores\'s \\"Mediterraneo\\". Zhang\'s next directorial work, \\"The Story of Qiu Ju\\", in 1992, once again starring Gong Li in the lead role. The film, which tells the tale of a peasant woman seeking justice for her husband after he was beaten by a village official, was a hit at film festivals and won the Golden Lion award at the"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Gong Li",\n'
    '                    "text": "Gong Li Gong Li (born 31 December 1965) is a Chinese-born Singaporean film actress. She achieved international prominence through her close collaborations with Chinese director Zhang Yimou and won the Volpi Cup for Best Actress at Venice for her performance in his 1992 film \\"The Story of Qiu Ju\\". She has been credited with helping to bring Chinese cinema to prominence in Europe and the United States. In 2006, she was voted the most beautiful woman in China. Gong has won numerous accolades for her work as an actress; she won the New York Film Critics Circle Award for Best"\n'
    "                }\n"
    "            ]\n"
    "        },\n"
    "        {\n"
    '            "question": "In which years did Patti LaBelle publish music?",\n'
    '            "answer": "2006 [1], 1977 [2], 2004 [3], 2005 [3], 2000 [3], 2006 [3].",\n'
    '            "docs": [\n'
    "                {\n"
    '                    "title": "The Gospel According to Patti LaBelle",\n'
    '                    "text": "The Gospel According to Patti LaBelle The Gospel According to Patti LaBelle is the first gospel album released by singer Patti LaBelle, released in November 2006. This project began three years ago when Patti\'s late musical director and close friend Budd Ellison told a skeptical LaBelle that \\"it\'s now or never, Patti.\\" The album is dedicated to his memory as he succumbed to prostate cancer before the album saw a release. The album was released on November 21, 2006 through indie label Umbrella/Bungalow Records, also home to Carl Thomas, Rodney Jerkins, Dean \\"DC\\" Charles, and other artists. \\"The Gospel According"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Patti LaBelle (album)",\n'
    '                    "text": "scaled the high sixties on the \\"Billboard\\" R&B chart, it soon became one of her famous show-stoppers while performing the song. LaBelle performed the song at her first solo concert in London, getting a standing ovation, which helped to give LaBelle motivation to continue her career. The album, when released, performed successfully, reaching number 62 on the \\"Billboard\\" 200 and number 31 on the R&B albums chart, while critics hailed the album. Patti LaBelle (album) Patti LaBelle is the debut solo album by singer Patti LaBelle, released in 1977. The first album LaBelle recorded after sixteen years fronting the band"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Patti LaBelle",\n'
    '                    "text": "win. In 2000, LaBelle released her final MCA album, \\"When a Woman Loves\\", before signing with Def Soul Classics to release the 2004 album, \\"Timeless Journey\\". Following the release of her 2005 covers album, \\"Classic Moments\\", LaBelle engaged in a rivalry with Antonio \\"L.A.\\" Reid over the direction of her career, leading to her leaving the label.In the same year, the World Music Awards recognized her years in the music business by awarding her the Legend Award. In 2006, she released her first gospel album, \\"The Gospel According to Patti LaBelle\\" on the Bungalo label, the album later peaking at"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Patti LaBelle",\n'
    '                    "text": "Patti LaBelle Patti LaBelle (born Patricia Louise Holt; May 24, 1944) is an American singer, actress, and entrepreneur. LaBelle began her career in the early 1960s as lead singer and front woman of the vocal group, Patti LaBelle and the Bluebelles. Following the group\'s name change to Labelle in the early 1970s, they released the iconic disco song \\"Lady Marmalade\\" and the group later became the first African-American vocal group to land the cover of \\"Rolling Stone\\" magazine. After the group split in 1976, LaBelle began a successful solo career, starting with her critically acclaimed debut album, which included the"\n'
    "                },\n"
    "                {\n"
    '                    "title": "The Gospel According to Patti LaBelle",\n'
    '                    "text": "Billboard\'s Top Gospel Albums chart for 17 weeks. \\"Where Love Begins,\\" a duet with Yolanda Adams was played frequently on R&B and gospel radio stations and debuted at #68 on Billboard\'s Hot R&B/Hip-Hop tracks. The second single \\"Anything\\" featuring Kanye West, Mary Mary and Consequence hit #64 on Billboards Hot R&B/Hip-Hop tracks. In 2008, the album was nominated for a Dove Award for Contemporary Gospel Album of the Year at the 39th GMA Dove Awards. The Gospel According to Patti LaBelle The Gospel According to Patti LaBelle is the first gospel album released by singer Patti LaBelle, released in November"\n'
    "                }\n"
    "            ]\n"
    "        },\n"
    "        {\n"
    '            "question": "Glenn Ford was a member of cast in which film?",\n'
    '            "answer": "So Ends Our Night [1], Heaven with a Barbed Wire Fence [1], Happy Birthday to Me [2], The Greatest Gift [2], The Gift [2], The Brotherhood of the Bell [3].",\n'
    '            "docs": [\n'
    "                {\n"
    '                    "title": "Glenn Ford",\n'
    '                    "text": "name came from his father\'s hometown of Glenford, Alberta. His first major movie part was in the 1939 film, \\"Heaven with a Barbed Wire Fence\\". Top Hollywood director John Cromwell was impressed enough with his work to borrow him from Columbia for the independently produced drama, \\"So Ends Our Night\\" (1941), where Ford delivered a poignant portrayal of a 19-year-old German exile on the run in Nazi-occupied Europe. Working with Academy Award-winning Fredric March and wooing (onscreen) 30-year-old Margaret Sullavan, recently nominated for an Oscar, Ford\'s shy, ardent young refugee riveted attention even in such stellar company. \\"Glenn Ford, a"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Glenn Ford",\n'
    '                    "text": "were Westerns. He suggested doing a Western series, instead, which resulted in the \\"modern-day Western\\" series, \\"Cade\'s County\\". Ford played southwestern Sheriff Cade for one season (1971\\u20131972) in a mix of police mystery and western drama. In \\"The Family Holvak\\" (1975\\u20131976), Ford portrayed a Depression-era preacher in a family drama, reprising the same character he had played in the TV film, \\"The Greatest Gift\\". In 1978 Ford was host, presenter and narrator of the disaster documentary series \'When Havoc Struck\'. In 1981, Ford co-starred with Melissa Sue Anderson in the slasher film \\"Happy Birthday to Me\\". In 1991, Ford agreed"\n'
    "                },\n"
    "                {\n"
    '                    "title": "CBS Thursday Night Movie",\n'
    '                    "text": "Night Movie\\" opened its fall schedule with the premiere of a low-budget, made-for-TV movie, rather than a proven Hollywood blockbuster guaranteed to lure mass viewership, it became CBS\'s way of declaring its commitment to product that, although cheaply manufactured, was nevertheless new and topical. In this case, the movie was \\"The Brotherhood of the Bell\\", and the film\'s star was Glenn Ford, a movie actor who had never appeared in a television-film. In fact, before shooting on the project even began, Ford had been warned by friends in the industry that he would hate the experience. Instead, the actor reported"\n'
    "                },\n"
    "                {\n"
    '                    "title": "The Trouble with Girls (film) ",\n'
    '                    "text": "with Charlene, but when she refuses to give in, he deceives her and uses the local police force to be sure that she must leave on the train with the rest of the troupe. Cast notes In June 1959 it was announced that Don Mankiewicz would write a screenplay of an unpublished story by Mauri Grashin, Day Keene, and Dwight Babcock. By December 1960, with the project titled \\"Chautauqua\\", MGM was ready to make the film with Glenn Ford. Rumours circulating in Hollywood at the time stated that Presley would co-star with Ford, Hope Lange, and Arthur O\'Connell, but nothing"\n'
    "                },\n"
    "                {\n"
    '                    "title": "Trouble in the Glen",\n'
    '                    "text": "Mel Ferrer. It was Orson Welles\' fifth British movie in six months. Filming started 15 December 1953. The film received very poor reviews. Trouble in the Glen Trouble in the Glen is a 1954 British comedy film directed by Herbert Wilcox and starring Margaret Lockwood, Orson Welles, Forrest Tucker and Victor McLaglen. It is loosely based on Maurice Walsh\'s 1950 novel of the same name. It was filmed in Trucolor for Republic Pictures. After moving from South America to the Scottish Highlands, millionaire Sanin Cejador y Mengues (Welles) reassumes the title of laird of Glen Easan, which he inherited from"\n'
    "                }\n"
    "            ]\n"
    "        }\n"
    "    ]\n"
    "}\n"
)
